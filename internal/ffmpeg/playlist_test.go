package ffmpeg

import "testing"

func TestReadPlaylistTakesWholeLinesOnly(t *testing.T) {
	full := "#EXTM3U\n#EXT-X-MAP:URI=\"init-0.mp4\"\n#EXTINF:2.000,\n1.mp4\n#EXTINF:2.000,\n2.mp4\n#EXT-X-ENDLIST\n"
	segs, ended := ReadPlaylist([]byte(full))
	if len(segs) != 2 || segs[1].URI != "2.mp4" || segs[1].Duration != 2 || !ended {
		t.Fatalf("whole playlist: %+v ended=%v", segs, ended)
	}
	// Cut in the middle of the second segment's name: the half line is not a segment.
	segs, ended = ReadPlaylist([]byte(full[:len("#EXTM3U\n#EXT-X-MAP:URI=\"init-0.mp4\"\n#EXTINF:2.000,\n1.mp4\n#EXTINF:2.000,\n2.m")]))
	if len(segs) != 1 || ended {
		t.Fatalf("cut playlist: %+v ended=%v", segs, ended)
	}
	// Names that would leave the folder are not segments.
	if segs, _ := ReadPlaylist([]byte("#EXTINF:2,\n../x.mp4\n#EXTINF:2,\n/etc/passwd\n")); len(segs) != 0 {
		t.Fatalf("escaping names taken: %+v", segs)
	}
}

func FuzzReadPlaylist(f *testing.F) {
	f.Add([]byte("#EXTM3U\n#EXTINF:2.000,\n1.mp4\n#EXT-X-ENDLIST\n"))
	f.Add([]byte("#EXTINF:NaN,\nx\n#EXTINF:-1,\ny\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		segs, _ := ReadPlaylist(b)
		for _, s := range segs {
			if s.Duration < 0 || s.URI == "" || s.URI == ".." || len(s.URI) > len(b) {
				t.Fatalf("segment %+v from %q", s, b)
			}
			for _, c := range s.URI {
				if c == '/' || c == '\\' {
					t.Fatalf("segment name %q leaves the folder", s.URI)
				}
			}
		}
	})
}
