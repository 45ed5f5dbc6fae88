package flv

import (
	"bytes"
	"io"
	"runtime"
	"testing"
)

// FuzzParse feeds arbitrary bytes, in two chunkings, to a Stream: the
// parser never panics, finds the same tags however the bytes are cut, and
// when the input is good a reader's output parses as FLV again, tag for
// tag from its first keyframe.
func FuzzParse(f *testing.F) {
	f.Add(sample().Bytes(), uint8(1))
	f.Add(sample().Bytes(), uint8(7))
	f.Add(newBuilder(4).meta().aacSeq().audio(0, 1).Bytes(), uint8(3))
	f.Add([]byte("FLV\x01\x05\x00\x00\x00\x0c\xaa\xbb\xcc\x00\x00\x00\x00"), uint8(2))
	f.Add([]byte("FLV\x01"), uint8(1))
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		whole := NewStream(Options{MaxBuffered: 1 << 30})
		wr := whole.NewReader()
		_, errWhole := whole.Write(in)
		whole.Close()

		cut := NewStream(Options{MaxBuffered: 1 << 30})
		cr := cut.NewReader()
		var errCut error
		step := int(chunk%64) + 1
		for i := 0; i < len(in) && errCut == nil; i += step {
			_, errCut = cut.Write(in[i:min(i+step, len(in))])
		}
		cut.Close()

		if (errWhole == nil) != (errCut == nil) {
			t.Fatalf("whole: %v; in chunks of %d: %v", errWhole, step, errCut)
		}
		a, errA := io.ReadAll(wr)
		b, errB := io.ReadAll(cr)
		if (errA == nil) != (errB == nil) {
			t.Fatalf("readers end differently: %v, %v", errA, errB)
		}
		if errWhole != nil {
			return
		}
		if !bytes.Equal(a, b) {
			t.Fatalf("the readers' streams differ with chunks of %d", step)
		}
		if whole.Stats().Tags != cut.Stats().Tags {
			t.Fatalf("%d tags whole, %d in chunks", whole.Stats().Tags, cut.Stats().Tags)
		}
		if len(a) == 0 {
			return
		}
		again := NewStream(Options{})
		if _, err := again.parse(a); err != nil {
			t.Fatalf("a reader's output does not parse: %v", err)
		}
		if len(again.pending) != 0 {
			t.Fatal("a reader's output ends in an incomplete tag")
		}
	})
}

// BenchmarkWrite2Readers: one encode fanned out to two outputs that keep
// up, in 32 KiB writes (a pipe's chunks) of 4 KB video tags. Each round
// waits for both readers to have read it all, so what is measured is the
// whole fan-out: parsing, queueing and reading out twice.
func BenchmarkWrite2Readers(b *testing.B) {
	bld := newBuilder(5).meta().avcSeq().aacSeq()
	frame := make([]byte, 4000)
	frame[0], frame[1] = 0x27, 1
	ts := uint32(0)
	for i := range 300 {
		if i%60 == 0 {
			bld.key(ts, 1)
		} else {
			bld.tag(TagVideo, ts, frame)
		}
		bld.audio(ts+1, 2)
		ts += 33
	}
	in := bld.Bytes()
	hdr := in[:13]
	body := in[13:]
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	s := NewStream(Options{})
	s.Write(hdr)
	done := make(chan struct{})
	var readers []*Reader
	for range 2 {
		r := s.NewReader()
		readers = append(readers, r)
		go func() {
			io.Copy(io.Discard, r)
			done <- struct{}{}
		}()
	}
	b.ResetTimer()
	for range b.N {
		for i := 0; i < len(body); i += 32 << 10 {
			if _, err := s.Write(body[i:min(i+32<<10, len(body))]); err != nil {
				b.Fatal(err)
			}
		}
		for _, r := range readers {
			for {
				r.mu.Lock()
				n := r.bytes
				r.mu.Unlock()
				if n == 0 {
					break
				}
				runtime.Gosched()
			}
		}
	}
	b.StopTimer()
	s.Close()
	<-done
	<-done
	if n := s.Stats().CutOff; n != 0 {
		b.Fatalf("%d readers were cut off", n)
	}
}
