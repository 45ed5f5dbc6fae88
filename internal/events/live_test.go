package events

import "testing"

func TestHubCutsOffSlowClients(t *testing.T) {
	h := newHub(4)
	slow, _ := h.subscribe(func(*Live) bool { return true }, "")
	fast, _ := h.subscribe(func(*Live) bool { return true }, "")
	total := cap(slow.c) + 1
	for i := range total {
		h.publish(&Live{ID: string(rune('a' + i%26))})
		if e, ok := <-fast.c; !ok || e.ID != string(rune('a'+i%26)) {
			t.Fatalf("the fast client lost event %d", i)
		}
	}
	if !slow.lagged || fast.lagged || h.lagged.Load() != 1 {
		t.Fatalf("the slow client was not cut off alone (lagged %d)", h.lagged.Load())
	}
	n := 0
	for range slow.c {
		n++
	}
	if n != cap(slow.c) {
		t.Errorf("the slow client kept %d events, want %d", n, cap(slow.c))
	}
	h.close()
	if _, ok := <-fast.c; ok {
		t.Error("closing the hub left a client open")
	}
	if _, ok := h.subscribe(func(*Live) bool { return true }, ""); ok {
		t.Error("subscribed to a closed hub")
	}
	h.unsubscribe(slow)
	h.unsubscribe(fast)
}
