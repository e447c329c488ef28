package httpapi

import "net/http"

// Page is the body of every list answer from V20270101 on: one page of
// items and, when more follow, the cursor of the next page.
type Page[T any] struct {
	Items    []T    `json:"items"`
	NextPage string `json:"nextPage,omitempty"`
}

// WriteList answers 200 with one page of a list: as Page from V20270101 on,
// and before it as legacy, the route's own body of the older versions (which
// named the array after what it lists: records, jobs, clients).
func WriteList[T any](w http.ResponseWriter, r *http.Request, items []T, nextPage string, legacy any) {
	if !AtLeast(r.Context(), V20270101) {
		WriteJSON(w, http.StatusOK, legacy)
		return
	}
	if items == nil {
		items = []T{}
	}
	WriteJSON(w, http.StatusOK, Page[T]{Items: items, NextPage: nextPage})
}
