package reports

import (
	"bytes"
	"encoding/csv"
	"strings"
	"testing"
	"time"

	"github.com/kakin-dev/kakin/catalog"
)

func TestParamsValidate(t *testing.T) {
	// 20:00 UTC on April 9th is already April 10th in Tokyo.
	now := time.Date(2026, 4, 9, 20, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		p      Params
		fields string
	}{
		{"a past month", Params{Type: TypeUser, From: "2026-03-01", To: "2026-03-31"}, ""},
		{"yesterday in UTC", Params{Type: TypePartner, From: "2026-04-08", To: "2026-04-08"}, ""},
		{"today in UTC", Params{Type: TypePartner, From: "2026-04-09", To: "2026-04-09"}, "from,to"},
		{"today in UTC is yesterday in Tokyo", Params{Type: TypePartner, From: "2026-04-09", To: "2026-04-09", TimeZone: "Asia/Tokyo"}, ""},
		{"the future", Params{Type: TypeCustomer, From: "2026-03-01", To: "2027-01-01"}, "to"},
		{"five years back is the limit", Params{Type: TypeCustomer, From: "2021-04-09", To: "2021-04-30"}, ""},
		{"older than five years", Params{Type: TypeCustomer, From: "2021-04-08", To: "2021-04-30"}, "from"},
		{"to before from", Params{Type: TypeUser, From: "2026-03-02", To: "2026-03-01"}, "to"},
		{"not dates", Params{Type: TypeUser, From: "2026-3-1", To: "yesterday"}, "from,to"},
		{"bad type, format, zone", Params{Type: "sub", From: "2026-03-01", To: "2026-03-01", Format: "xlsx", TimeZone: "Local"}, "type,format,time_zone"},
		{"bad group", Params{Type: TypeUser, From: "2026-03-01", To: "2026-03-01", Group: "a/b"}, "group"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.p.Normalize()
			var fields []string
			for _, e := range tc.p.Validate(now) {
				fields = append(fields, e.Field)
			}
			if got := strings.Join(fields, ","); got != tc.fields {
				t.Errorf("fields %q, want %q (%v)", got, tc.fields, tc.p.Validate(now))
			}
		})
	}
}

func TestDecimalBytesRoundTrip(t *testing.T) {
	for _, s := range []string{"0", "1", "0.5", "0.000000001", "-0.000000001", "-1.5", "9999999999999999999999999999.999999999",
		"-9999999999999999999999999999.999999999", "128", "-128", "255.000000001"} {
		b := DecimalBytes(dec(s))
		if len(b) != 16 {
			t.Fatalf("%s: %d bytes", s, len(b))
		}
		if got := DecimalFromBytes(b); !got.Equal(dec(s)) {
			t.Errorf("%s: round trip %s", s, got)
		}
	}
}

func TestWriters(t *testing.T) {
	row := Row{PartnerName: "P, Inc.", PartnerID: "p", SubscriptionID: "sc1", ServiceName: "WEBEX_SUITE", SKU: "seats",
		Description: "Seats", Start: catalog.Date{Year: 2026, Month: 3, Day: 1}, End: catalog.Date{Year: 2026, Month: 3, Day: 2},
		Quantity: dec("1.5"), CustomerID: "c1", CustomerExternalID: "x", SubscriberID: "s", UserID: "u", WorkspaceID: "w", LocationID: "l"}
	for _, tc := range []struct {
		typ  Type
		want string
	}{
		{TypePartner, `"P, Inc.",p,sc1,WEBEX_SUITE,seats,Seats,2026-03-01,2026-03-02,1.5`},
		{TypeCustomer, `"P, Inc.",p,sc1,WEBEX_SUITE,seats,Seats,2026-03-01,2026-03-02,1.5,c1,x,l`},
		{TypeUser, `"P, Inc.",p,sc1,WEBEX_SUITE,seats,Seats,2026-03-01,2026-03-02,1.5,c1,x,s,u,w,l`},
	} {
		t.Run(string(tc.typ), func(t *testing.T) {
			var buf bytes.Buffer
			w, err := NewRowWriter(&buf, FormatCSV, tc.typ)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Write(&row); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
			if len(lines) != 2 || lines[0] != strings.Join(Columns(tc.typ), ",") || lines[1] != tc.want {
				t.Errorf("CSV %q", buf.String())
			}
			if _, err := csv.NewReader(&buf).ReadAll(); err != nil {
				t.Error(err)
			}
		})
	}
	var buf bytes.Buffer
	w, _ := NewRowWriter(&buf, FormatParquet, TypeUser)
	for range 3 {
		if err := w.Write(&row); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	rows, err := ReadParquetUser(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || rows[2] != row && !(rows[2].Quantity.Equal(row.Quantity) && rows[2].UserID == "u" && rows[2].End == row.End) {
		t.Errorf("parquet rows %+v", rows)
	}
}

func TestSigner(t *testing.T) {
	s := NewSigner([]byte("k"), time.Hour)
	now := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	u, exp := s.URL("ta", "job_x", now)
	if !exp.Equal(now.Add(time.Hour)) || !strings.HasPrefix(u, FilePath+"job_x?tenant=ta&expires=") {
		t.Fatalf("URL %s expires %s", u, exp)
	}
	q := strings.Split(strings.SplitN(u, "?", 2)[1], "&")
	expires, sig := strings.TrimPrefix(q[1], "expires="), strings.TrimPrefix(q[2], "signature=")
	for _, tc := range []struct {
		name, tenant, id, expires, sig string
		at                             time.Time
		want                           error
	}{
		{"valid", "ta", "job_x", expires, sig, now.Add(59 * time.Minute), nil},
		{"expired", "ta", "job_x", expires, sig, now.Add(time.Hour), ErrExpired},
		{"other tenant", "tb", "job_x", expires, sig, now, ErrBadSignature},
		{"other report", "ta", "job_y", expires, sig, now, ErrBadSignature},
		{"later expiry", "ta", "job_x", "99999999999", sig, now, ErrBadSignature},
		{"no signature", "ta", "job_x", expires, "", now, ErrBadSignature},
	} {
		if err := s.Check(tc.tenant, tc.id, tc.expires, tc.sig, tc.at); err != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}
