package reports

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"io"
	"math/big"
	"time"

	"github.com/kakin-dev/kakin/catalog"
	"github.com/parquet-go/parquet-go"
	"github.com/shopspring/decimal"
)

// RowWriter writes a report's rows to a file.
type RowWriter interface {
	Write(r *Row) error
	// Close writes what is buffered (the Parquet footer) but does not close
	// the underlying writer.
	Close() error
}

// NewRowWriter returns the writer of format f for a report of type t.
func NewRowWriter(w io.Writer, f Format, t Type) (RowWriter, error) {
	switch f {
	case FormatCSV:
		return newCSVWriter(w, t)
	case FormatParquet:
		return newParquetWriter(w, t), nil
	default:
		return nil, fmt.Errorf("reports: unknown format %q", f)
	}
}

// csvWriter writes RFC 4180 CSV with a header row; quantities are exact
// decimal strings, dates YYYY-MM-DD.
type csvWriter struct {
	bw  *bufio.Writer
	cw  *csv.Writer
	t   Type
	buf []string
}

func newCSVWriter(w io.Writer, t Type) (*csvWriter, error) {
	bw := bufio.NewWriterSize(w, 256<<10)
	c := &csvWriter{bw: bw, cw: csv.NewWriter(bw), t: t}
	if err := c.cw.Write(Columns(t)); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *csvWriter) Write(r *Row) error { return c.cw.Write(r.Values(c.t)) }

func (c *csvWriter) Close() error {
	c.cw.Flush()
	if err := c.cw.Error(); err != nil {
		return err
	}
	return c.bw.Flush()
}

// The Parquet rows: quantity is DECIMAL(38, 9) (big-endian two's complement
// of the unscaled value, exact), dates are DATE.
type parquetUser struct {
	PartnerName        string `parquet:"partner_name"`
	PartnerID          string `parquet:"partner_org_id"`
	SubscriptionID     string `parquet:"subscription_id"`
	ServiceName        string `parquet:"service_name"`
	SKU                string `parquet:"sku"`
	Description        string `parquet:"description"`
	Start              int32  `parquet:"consumption_start_date,date"`
	End                int32  `parquet:"consumption_end_date,date"`
	Quantity           []byte `parquet:"quantity,decimal(9:38)"`
	CustomerID         string `parquet:"customer_org_id"`
	CustomerExternalID string `parquet:"customer_external_id"`
	SubscriberID       string `parquet:"subscriber_id"`
	UserID             string `parquet:"user_id"`
	WorkspaceID        string `parquet:"workspace_id"`
	LocationID         string `parquet:"location_id"`
}

type parquetCustomer struct {
	PartnerName        string `parquet:"partner_name"`
	PartnerID          string `parquet:"partner_org_id"`
	SubscriptionID     string `parquet:"subscription_id"`
	ServiceName        string `parquet:"service_name"`
	SKU                string `parquet:"sku"`
	Description        string `parquet:"description"`
	Start              int32  `parquet:"consumption_start_date,date"`
	End                int32  `parquet:"consumption_end_date,date"`
	Quantity           []byte `parquet:"quantity,decimal(9:38)"`
	CustomerID         string `parquet:"customer_org_id"`
	CustomerExternalID string `parquet:"customer_external_id"`
	LocationID         string `parquet:"location_id"`
}

type parquetPartner struct {
	PartnerName    string `parquet:"partner_name"`
	PartnerID      string `parquet:"partner_org_id"`
	SubscriptionID string `parquet:"subscription_id"`
	ServiceName    string `parquet:"service_name"`
	SKU            string `parquet:"sku"`
	Description    string `parquet:"description"`
	Start          int32  `parquet:"consumption_start_date,date"`
	End            int32  `parquet:"consumption_end_date,date"`
	Quantity       []byte `parquet:"quantity,decimal(9:38)"`
}

// epochDays is d as days since 1970-01-01 (Parquet DATE).
func epochDays(d catalog.Date) int32 {
	return int32(d.In(time.UTC).Unix() / 86400)
}

// DateOfEpochDays is the inverse of the Parquet DATE encoding.
func DateOfEpochDays(n int32) catalog.Date {
	return catalog.DateOf(time.Unix(int64(n)*86400, 0).UTC())
}

// DecimalBytes encodes q at scale 9 as the 16-byte big-endian two's
// complement of its unscaled value (Parquet DECIMAL(38, 9), a fixed-length
// byte array). Stored quantities are below 10^28, far inside 2^127.
func DecimalBytes(q decimal.Decimal) []byte {
	u := q.Shift(9).BigInt() // exact: quantities have at most 9 fraction digits
	if u.Sign() < 0 {
		u.Add(u, new(big.Int).Lsh(big.NewInt(1), 128))
	}
	return u.FillBytes(make([]byte, 16))
}

// DecimalFromBytes decodes DecimalBytes.
func DecimalFromBytes(b []byte) decimal.Decimal {
	u := new(big.Int).SetBytes(b)
	if len(b) > 0 && b[0]&0x80 != 0 {
		u.Sub(u, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	return decimal.NewFromBigInt(u, -9)
}

const parquetBatch = 4096

type parquetWriter[T any] struct {
	w    *parquet.GenericWriter[T]
	conv func(*Row) T
	buf  []T
}

func (p *parquetWriter[T]) Write(r *Row) error {
	p.buf = append(p.buf, p.conv(r))
	if len(p.buf) >= parquetBatch {
		return p.flush()
	}
	return nil
}

func (p *parquetWriter[T]) flush() error {
	if len(p.buf) == 0 {
		return nil
	}
	if _, err := p.w.Write(p.buf); err != nil {
		return fmt.Errorf("reports: write parquet rows: %w", err)
	}
	p.buf = p.buf[:0]
	return nil
}

func (p *parquetWriter[T]) Close() error {
	if err := p.flush(); err != nil {
		return err
	}
	return p.w.Close()
}

func newParquetWriter(w io.Writer, t Type) RowWriter {
	switch t {
	case TypePartner:
		return &parquetWriter[parquetPartner]{w: parquet.NewGenericWriter[parquetPartner](w), conv: func(r *Row) parquetPartner {
			return parquetPartner{r.PartnerName, r.PartnerID, r.SubscriptionID, r.ServiceName, r.SKU, r.Description,
				epochDays(r.Start), epochDays(r.End), DecimalBytes(r.Quantity)}
		}}
	case TypeCustomer:
		return &parquetWriter[parquetCustomer]{w: parquet.NewGenericWriter[parquetCustomer](w), conv: func(r *Row) parquetCustomer {
			return parquetCustomer{r.PartnerName, r.PartnerID, r.SubscriptionID, r.ServiceName, r.SKU, r.Description,
				epochDays(r.Start), epochDays(r.End), DecimalBytes(r.Quantity), r.CustomerID, r.CustomerExternalID, r.LocationID}
		}}
	default:
		return &parquetWriter[parquetUser]{w: parquet.NewGenericWriter[parquetUser](w), conv: func(r *Row) parquetUser {
			return parquetUser{r.PartnerName, r.PartnerID, r.SubscriptionID, r.ServiceName, r.SKU, r.Description,
				epochDays(r.Start), epochDays(r.End), DecimalBytes(r.Quantity), r.CustomerID, r.CustomerExternalID,
				r.SubscriberID, r.UserID, r.WorkspaceID, r.LocationID}
		}}
	}
}

// ReadParquetUser reads a user report written as Parquet (tests and tools).
func ReadParquetUser(r io.ReaderAt, size int64) ([]Row, error) {
	rows, err := parquet.Read[parquetUser](r, size)
	if err != nil {
		return nil, err
	}
	out := make([]Row, len(rows))
	for i, p := range rows {
		out[i] = Row{PartnerName: p.PartnerName, PartnerID: p.PartnerID, SubscriptionID: p.SubscriptionID,
			ServiceName: p.ServiceName, SKU: p.SKU, Description: p.Description, Start: DateOfEpochDays(p.Start),
			End: DateOfEpochDays(p.End), Quantity: DecimalFromBytes(p.Quantity), CustomerID: p.CustomerID,
			CustomerExternalID: p.CustomerExternalID, SubscriberID: p.SubscriberID, UserID: p.UserID,
			WorkspaceID: p.WorkspaceID, LocationID: p.LocationID}
	}
	return out, nil
}
