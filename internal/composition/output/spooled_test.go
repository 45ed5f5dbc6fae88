package output

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// A killed ffmpeg's playlist can lag its segments: recovery takes the
// finished ones past what it lists, at the nominal length, and leaves out
// a segment just opened (empty) and one still being written (.tmp).
func TestSpooledSegments(t *testing.T) {
	dir := t.TempDir()
	for name, size := range map[string]int{"1.ts": 10, "2.ts": 10, "3.ts": 10, "4.ts": 0, "5.ts.tmp": 10, "playlist.m3u8": 10} {
		if err := os.WriteFile(filepath.Join(dir, name), make([]byte, size), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	listed := []segment{{uri: "1.ts", dur: 1.5}}
	got := spooledSegments(dir, listed, 2)
	want := []segment{{uri: "1.ts", dur: 1.5}, {uri: "2.ts", dur: 2}, {uri: "3.ts", dur: 2}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	// An empty playlist: every finished segment.
	if got := spooledSegments(dir, nil, 2); len(got) != 3 || got[0].uri != "1.ts" {
		t.Fatalf("from an empty playlist: %+v", got)
	}
	// A missing folder: what the playlist lists.
	if got := spooledSegments(filepath.Join(dir, "none"), listed, 2); !reflect.DeepEqual(got, listed) {
		t.Fatalf("from a missing folder: %+v", got)
	}
}
