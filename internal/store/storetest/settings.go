package storetest

// Settings such as the token signing key.

import (
	"bytes"
	"fmt"
	"sync"
	"testing"

	"github.com/rostrum-dev/rostrum/internal/store"
)

func testSettings(t *testing.T, s store.Store) {
	_, err := s.GetSetting(ctx, "signing-key")
	wantErr(t, "GetSetting of missing", err, store.ErrNotFound)

	v, err := s.PutSettingIfAbsent(ctx, "signing-key", []byte("first"))
	if err != nil || string(v) != "first" {
		t.Fatalf("PutSettingIfAbsent = %q, %v; want first", v, err)
	}
	v, err = s.PutSettingIfAbsent(ctx, "signing-key", []byte("second"))
	if err != nil || string(v) != "first" {
		t.Fatalf("PutSettingIfAbsent over existing = %q, %v; want first", v, err)
	}
	v, err = s.GetSetting(ctx, "signing-key")
	if err != nil || string(v) != "first" {
		t.Fatalf("GetSetting = %q, %v; want first", v, err)
	}
	bin := []byte{0, 1, 2, 0xff, 0xfe, 0}
	if v, err := s.PutSettingIfAbsent(ctx, "binary", bin); err != nil || !bytes.Equal(v, bin) {
		t.Fatalf("PutSettingIfAbsent(binary) = %x, %v", v, err)
	}
	if v, err := s.GetSetting(ctx, "binary"); err != nil || !bytes.Equal(v, bin) {
		t.Fatalf("GetSetting(binary) = %x, %v", v, err)
	}
	_, err = s.GetSetting(ctx, "other")
	wantErr(t, "GetSetting of other", err, store.ErrNotFound)
}

func testSettingsConcurrent(t *testing.T, s store.Store) {
	const n = 10
	got := make([][]byte, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			v, err := s.PutSettingIfAbsent(ctx, "k", []byte(fmt.Sprint(i)))
			if err != nil {
				t.Errorf("PutSettingIfAbsent: %v", err)
			}
			got[i] = v
		})
	}
	close(start)
	wg.Wait()
	stored, err := s.GetSetting(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range got {
		if !bytes.Equal(v, stored) {
			t.Errorf("caller %d got %q, stored %q", i, v, stored)
		}
	}
}
