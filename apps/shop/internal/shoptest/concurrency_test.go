package shoptest

import (
	"net/http"
	"strings"
	"sync"
	"testing"
)

// TestConcurrentOrdersNeverOversell places 50 orders at once for a product
// with 20 in stock: exactly 20 may succeed.
func TestConcurrentOrdersNeverOversell(t *testing.T) {
	f := newFixture(t)
	const stock, buyers = 20, 50
	productID := f.product("Limited", 10.50, stock)

	statuses := make([]int, buyers)
	details := make([]string, buyers)
	var start, done sync.WaitGroup
	start.Add(1)
	for i := range buyers {
		done.Add(1)
		go func() {
			defer done.Done()
			start.Wait()
			resp, err := send(request{method: "POST", url: f.orders("/orders/"), token: f.token, body: f.orderBody(item(productID, 1, 10.50))})
			if err != nil {
				details[i] = err.Error()
				return
			}
			statuses[i] = resp.status
			details[i] = string(resp.body)
		}()
	}
	start.Done()
	done.Wait()

	created, refused := 0, 0
	for i, status := range statuses {
		switch status {
		case http.StatusCreated:
			created++
		case http.StatusBadRequest:
			refused++
			if !strings.Contains(details[i], "Insufficient stock") || !strings.Contains(details[i], productID) {
				t.Errorf("refusal does not say which product lacks stock: %s", details[i])
			}
		default:
			t.Errorf("order %d: status %d: %s", i, status, details[i])
		}
	}
	if created != stock || refused != buyers-stock {
		t.Errorf("%d orders created and %d refused, want %d and %d", created, refused, stock, buyers-stock)
	}
	if available, reserved := f.stock(productID); available != "0" || reserved != "20" {
		t.Errorf("stock after the rush: %s available, %s reserved; want 0 and 20", available, reserved)
	}
	if n := f.orderCount(); n != stock {
		t.Errorf("%d orders stored, want %d", n, stock)
	}
	history := call(t, request{method: "GET", url: f.inv("/inventory/history/" + productID + "?limit=1000")}).expect(t, 200, "history").list(t)
	reserves := 0
	for _, entry := range history {
		if available := num(t, entry, "available_after"); strings.HasPrefix(available, "-") {
			t.Errorf("stock went negative: %v", entry)
		}
		if entry["change_type"] == "reserve" {
			reserves++
		}
	}
	if reserves != stock {
		t.Errorf("history holds %d reservations, want %d", reserves, stock)
	}
}
