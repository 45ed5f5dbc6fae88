// Package flv fans one encode's FLV byte stream out to the outputs that
// send it on (an RTMP pusher, an HLS writer). The mixer's encoder writes
// FLV (H.264 + AAC) into a Stream in whatever chunks its pipe gives; each
// output reads its own Reader, which is a valid FLV stream by itself from
// the moment it was opened: the FLV header, the onMetaData script tag, the
// AVC and AAC sequence headers, then the tags from the next video keyframe
// on.
//
// A Reader's timestamps are rebased: its first keyframe is at 0 and the
// tags before it (audio a few milliseconds older) are left out, so an
// output opened an hour into the composition starts at 0 like one opened
// at its start. The header tags are at 0.
//
// Write never blocks on a reader: each Reader has a bounded buffer, and a
// reader that falls behind by more than it is cut off (its Read returns
// ErrSlowReader) and the others go on. The encoder never waits for the
// slowest destination.
package flv

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
)

// Errors of a Stream and its Readers.
var (
	// ErrSlowReader ends a Reader that fell more than its buffer behind.
	ErrSlowReader = errors.New("flv: reader fell too far behind and was cut off")
	// ErrMalformed is the error of a stream that is not FLV.
	ErrMalformed = errors.New("flv: malformed stream")
	// ErrClosed: the Reader or the Stream was closed.
	ErrClosed = errors.New("flv: closed")
)

// Tag types.
const (
	TagAudio  = 8
	TagVideo  = 9
	TagScript = 18
)

const (
	headerLen    = 9  // "FLV", version, flags, data offset
	tagHeaderLen = 11 // type, size (3), timestamp (3+1), stream id (3)
	// DefaultMaxBuffered is how far a Reader may fall behind: about 13 s
	// of a 2.5 Mbit/s encode, 5 s of 6 Mbit/s.
	DefaultMaxBuffered = 4 << 20
)

// Options configure a Stream.
type Options struct {
	// MaxBuffered is the most bytes a Reader holds unread before it is cut
	// off; 0 means DefaultMaxBuffered.
	MaxBuffered int
}

// Stream receives one FLV byte stream and fans it out to Readers. Write
// and Close are for one writer; NewReader may be called from anywhere.
type Stream struct {
	max int

	// The parser's state; only Write touches it.
	pending   []byte // bytes of an incomplete header or tag
	gotHeader bool
	skip      int // bytes of the header's data offset beyond 9 still to skip

	mu      sync.Mutex
	header  []byte // 9-byte FLV header + PreviousTagSize0, normalised
	meta    *Tag   // the latest onMetaData
	avcSeq  *Tag   // the latest AVC sequence header
	aacSeq  *Tag   // the latest AAC sequence header
	readers map[*Reader]struct{}
	err     error // set once: io.EOF after Close, or the parse error
	stats   Stats
}

// Stats count what a Stream has seen.
type Stats struct {
	Bytes     int64
	Tags      int64
	Keyframes int64
	CutOff    int64 // readers cut off for being slow
}

// Tag is one parsed FLV tag.
type Tag struct {
	Type      byte
	Timestamp uint32 // milliseconds
	// raw is the whole tag: its 11-byte header, its data and the 4-byte
	// PreviousTagSize after it. It is never changed once made, so that
	// every reader can share it.
	raw []byte
}

// Data is the tag's body.
func (t *Tag) Data() []byte { return t.raw[tagHeaderLen : len(t.raw)-4] }

// IsKeyframe reports a video tag of a keyframe that is not a sequence
// header: where a reader can start.
func (t *Tag) IsKeyframe() bool {
	d := t.Data()
	if t.Type != TagVideo || len(d) < 1 || d[0]>>4 != 1 {
		return false
	}
	return !(d[0]&0x0f == 7 && len(d) >= 2 && d[1] != 1) // AVC: NALUs only
}

func (t *Tag) isAVCSequenceHeader() bool {
	d := t.Data()
	return t.Type == TagVideo && len(d) >= 2 && d[0]&0x0f == 7 && d[1] == 0
}

func (t *Tag) isAACSequenceHeader() bool {
	d := t.Data()
	return t.Type == TagAudio && len(d) >= 2 && d[0]>>4 == 10 && d[1] == 0
}

func (t *Tag) isMetadata() bool {
	d := t.Data()
	// AMF0 string (0x02), length 10, "onMetaData".
	return t.Type == TagScript && len(d) >= 13 && d[0] == 2 && d[1] == 0 && d[2] == 10 && string(d[3:13]) == "onMetaData"
}

// NewStream returns an empty Stream.
func NewStream(o Options) *Stream {
	if o.MaxBuffered <= 0 {
		o.MaxBuffered = DefaultMaxBuffered
	}
	return &Stream{max: o.MaxBuffered, readers: map[*Reader]struct{}{}}
}

// Write parses p, which continues the stream wherever the last Write
// stopped, and hands the complete tags to the readers. It never blocks on
// them. A stream that is not FLV fails with ErrMalformed: its readers end
// with that error and later Writes return it.
func (s *Stream) Write(p []byte) (int, error) {
	s.mu.Lock()
	err := s.err
	s.mu.Unlock()
	if err != nil {
		if err == io.EOF {
			err = ErrClosed
		}
		return 0, err
	}
	n := len(p)
	tags, perr := s.parse(p)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Bytes += int64(n)
	for _, t := range tags {
		s.deliver(t)
	}
	if perr != nil {
		s.endLocked(perr)
		return n, perr
	}
	return n, nil
}

// parse consumes p and returns the tags it completes.
func (s *Stream) parse(p []byte) ([]*Tag, error) {
	var tags []*Tag
	buf := p
	if len(s.pending) > 0 {
		s.pending = append(s.pending, p...)
		buf = s.pending
	}
	for {
		if !s.gotHeader {
			if len(buf) < headerLen {
				break
			}
			if string(buf[:3]) != "FLV" || buf[3] != 1 {
				return tags, fmt.Errorf("%w: no FLV version 1 header", ErrMalformed)
			}
			off := binary.BigEndian.Uint32(buf[5:9])
			if off < headerLen || off > 1<<20 {
				return tags, fmt.Errorf("%w: header data offset %d", ErrMalformed, off)
			}
			h := make([]byte, headerLen+4)
			copy(h, buf[:headerLen])
			binary.BigEndian.PutUint32(h[5:9], headerLen)
			s.mu.Lock()
			s.header = h
			s.mu.Unlock()
			s.gotHeader = true
			s.skip = int(off) - headerLen + 4 // extra header bytes, PreviousTagSize0
			buf = buf[headerLen:]
		}
		if s.skip > 0 {
			k := min(s.skip, len(buf))
			s.skip -= k
			buf = buf[k:]
			if s.skip > 0 {
				break
			}
		}
		if len(buf) < tagHeaderLen {
			break
		}
		typ := buf[0] & 0x1f
		if buf[0]&0xc0 != 0 || buf[0]&0x20 != 0 {
			return tags, fmt.Errorf("%w: reserved or encrypted tag flags 0x%02x", ErrMalformed, buf[0])
		}
		if typ != TagAudio && typ != TagVideo && typ != TagScript {
			return tags, fmt.Errorf("%w: tag type %d", ErrMalformed, typ)
		}
		size := int(buf[1])<<16 | int(buf[2])<<8 | int(buf[3])
		total := tagHeaderLen + size + 4
		if len(buf) < total {
			break
		}
		if prev := binary.BigEndian.Uint32(buf[total-4 : total]); int(prev) != tagHeaderLen+size {
			return tags, fmt.Errorf("%w: PreviousTagSize %d after a tag of %d bytes", ErrMalformed, prev, tagHeaderLen+size)
		}
		ts := uint32(buf[4])<<16 | uint32(buf[5])<<8 | uint32(buf[6]) | uint32(buf[7])<<24
		raw := make([]byte, total)
		copy(raw, buf[:total])
		tags = append(tags, &Tag{Type: typ, Timestamp: ts, raw: raw})
		buf = buf[total:]
	}
	// Keep the incomplete rest (copied: p is the caller's), in the pending
	// buffer's memory, which grows only to the largest tag.
	s.pending = append(s.pending[:0], buf...)
	return tags, nil
}

// deliver records header tags and hands t to every reader. Called with
// s.mu held.
func (s *Stream) deliver(t *Tag) {
	s.stats.Tags++
	key := t.IsKeyframe()
	if key {
		s.stats.Keyframes++
	}
	switch {
	case t.isMetadata():
		s.meta = t
	case t.isAVCSequenceHeader():
		s.avcSeq = t
	case t.isAACSequenceHeader():
		s.aacSeq = t
	}
	for r := range s.readers {
		if !r.push(t, key) {
			delete(s.readers, r)
			s.stats.CutOff++
		}
	}
}

// startTags are what a reader that starts now is given before its first
// keyframe. Called with s.mu held.
func (s *Stream) startTags() []*Tag {
	var out []*Tag
	for _, t := range []*Tag{s.meta, s.avcSeq, s.aacSeq} {
		if t != nil {
			out = append(out, t)
		}
	}
	return out
}

// hasVideo reports whether the stream carries video: readers start at a
// keyframe then, else at once.
func (s *Stream) hasVideo() bool {
	return s.avcSeq != nil || (len(s.header) > 4 && s.header[4]&0x01 != 0)
}

// Close ends the stream: every reader reads to the end of what it was
// given, then io.EOF. An incomplete last tag is dropped.
func (s *Stream) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.endLocked(io.EOF)
	}
	return nil
}

// CloseWithError ends the stream with err: readers return it once they
// have read what they were given.
func (s *Stream) CloseWithError(err error) {
	if err == nil {
		err = io.EOF
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.endLocked(err)
	}
}

func (s *Stream) endLocked(err error) {
	s.err = err
	for r := range s.readers {
		r.end(err)
	}
	clear(s.readers)
}

// Stats returns the stream's counters.
func (s *Stream) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// NewReader returns a reader of the stream from now on: a valid FLV
// stream by itself (see the package documentation). A reader of a stream
// that has ended returns its end at once. The caller closes it.
func (s *Stream) NewReader() *Reader {
	r := &Reader{s: s, max: s.max}
	r.cond = sync.NewCond(&r.mu)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		r.err = s.err
		return r
	}
	s.readers[r] = struct{}{}
	return r
}

// Reader reads one Stream from a keyframe on. It is an io.ReadCloser.
type Reader struct {
	s   *Stream
	max int

	mu      sync.Mutex
	cond    *sync.Cond
	started bool
	base    uint32 // timestamp of the first keyframe
	queue   []entry
	head    int // index of the entry being read
	off     int // bytes of queue[head] already read
	bytes   int // unread bytes queued
	err     error
	closed  bool
}

// entry is one tag as this reader gives it: its own header (timestamp
// rebased) and the shared rest.
type entry struct {
	hdr [tagHeaderLen]byte
	t   *Tag
}

func (e *entry) size() int { return len(e.t.raw) }

// push queues t; it reports false when the reader is done with the stream
// (cut off or closed). Called with s.mu held.
func (r *Reader) push(t *Tag, key bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.err != nil {
		return false
	}
	if !r.started {
		if !key && r.s.hasVideo() {
			return true
		}
		r.started = true
		r.base = t.Timestamp
		r.enqueueHeader()
		for _, h := range r.s.startTags() {
			if h != t {
				r.enqueue(h, 0)
			}
		}
	}
	ts := uint32(0)
	switch {
	case t.Timestamp >= r.base:
		ts = t.Timestamp - r.base
	case !key:
		return true // from before this reader's start
	}
	// (A keyframe older than the first one would be a stream going back in
	// time: it is given 0 rather than a timestamp 49 days ahead.)
	r.enqueue(t, ts)
	if r.bytes > r.max {
		r.err = ErrSlowReader
		r.queue, r.head, r.off, r.bytes = nil, 0, 0, 0
		r.cond.Broadcast()
		return false
	}
	r.cond.Broadcast()
	return true
}

// enqueueHeader queues the FLV file header (and PreviousTagSize0) as a
// pseudo-tag.
func (r *Reader) enqueueHeader() {
	r.queue = append(r.queue, entry{t: &Tag{raw: r.s.header}})
	r.bytes += len(r.s.header)
}

func (r *Reader) enqueue(t *Tag, ts uint32) {
	e := entry{t: t}
	copy(e.hdr[:], t.raw[:tagHeaderLen])
	e.hdr[4], e.hdr[5], e.hdr[6], e.hdr[7] = byte(ts>>16), byte(ts>>8), byte(ts), byte(ts>>24)
	r.queue = append(r.queue, e)
	r.bytes += e.size()
}

// end ends the reader with err once it has read what it has. Called with
// s.mu held.
func (r *Reader) end(err error) {
	r.mu.Lock()
	if r.err == nil {
		r.err = err
	}
	r.cond.Broadcast()
	r.mu.Unlock()
}

// Read reads the stream, blocking until there is something to read or the
// reader ends: io.EOF when the Stream was closed, ErrSlowReader when this
// reader was cut off (at once: what it had queued is dropped), ErrClosed
// after Close.
func (r *Reader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for r.head == len(r.queue) && r.err == nil && !r.closed {
		r.cond.Wait()
	}
	if r.closed {
		return 0, ErrClosed
	}
	if r.head == len(r.queue) || r.err == ErrSlowReader {
		return 0, r.err
	}
	n := 0
	for n < len(p) && r.head < len(r.queue) {
		e := &r.queue[r.head]
		var k int
		if e.t.Type == 0 { // the file header
			k = copy(p[n:], e.t.raw[r.off:])
		} else {
			if r.off < tagHeaderLen {
				k = copy(p[n:], e.hdr[r.off:])
			} else {
				k = copy(p[n:], e.t.raw[r.off:])
			}
		}
		n += k
		r.off += k
		r.bytes -= k
		if r.off == e.size() {
			r.queue[r.head] = entry{}
			r.head++
			r.off = 0
		}
	}
	if r.head == len(r.queue) {
		// All read: reuse the queue's memory.
		r.queue, r.head = r.queue[:0], 0
	} else if r.head > 1024 && r.head > len(r.queue)/2 {
		r.queue = append(r.queue[:0], r.queue[r.head:]...)
		r.head = 0
	}
	return n, nil
}

// Close ends the reader: a blocked Read returns ErrClosed, and the stream
// forgets it.
func (r *Reader) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.queue = nil
	r.cond.Broadcast()
	r.mu.Unlock()
	r.s.mu.Lock()
	delete(r.s.readers, r)
	r.s.mu.Unlock()
	return nil
}

// Err is why the reader ended (nil while it runs).
func (r *Reader) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// Codecs are the RFC 6381 codec strings of the stream's video and audio,
// from its latest sequence headers ("avc1.64001f", "mp4a.40.2"), as an HLS
// multivariant playlist's CODECS wants them; "" for a kind it has not seen.
func (s *Stream) Codecs() (video, audio string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.avcSeq != nil {
		// AVCDecoderConfigurationRecord after the 5-byte AVC video header:
		// version, profile, compatibility, level.
		if d := s.avcSeq.Data(); len(d) >= 5+4 {
			video = fmt.Sprintf("avc1.%02x%02x%02x", d[6], d[7], d[8])
		}
	}
	if s.aacSeq != nil {
		// AudioSpecificConfig after the 2-byte AAC header: the object type
		// is its first 5 bits.
		if d := s.aacSeq.Data(); len(d) >= 3 {
			if ot := d[2] >> 3; ot > 0 && ot < 31 {
				audio = fmt.Sprintf("mp4a.40.%d", ot)
			}
		}
	}
	return video, audio
}

// Err reports how the stream ended: nil while it runs, io.EOF after Close,
// else the error it ended with (CloseWithError, or ErrMalformed).
func (s *Stream) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}
