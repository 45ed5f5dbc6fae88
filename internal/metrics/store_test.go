package metrics

import (
	"path/filepath"
	"testing"

	"github.com/rostrum-dev/rostrum/internal/store"
	"github.com/rostrum-dev/rostrum/internal/store/sqlite"
	"github.com/rostrum-dev/rostrum/internal/store/storetest"
)

// The observed store is still a conforming store: the whole conformance
// suite passes through it, and what it observed is counted.
func TestObservedStorePassesTheConformanceSuite(t *testing.T) {
	reg := New(nil)
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := sqlite.Open(filepath.Join(t.TempDir(), "rostrum.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return reg.Store(s)
	})
	fams, err := reg.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, f := range fams {
		seen[f.GetName()] = len(f.GetMetric())
	}
	// Every method of the interface was called by the suite, and some
	// answered not found.
	if seen["rostrum_store_operation_duration_seconds"] < 20 || seen["rostrum_store_errors_total"] == 0 {
		t.Errorf("store series: %d operations, %d error kinds", seen["rostrum_store_operation_duration_seconds"], seen["rostrum_store_errors_total"])
	}
}
