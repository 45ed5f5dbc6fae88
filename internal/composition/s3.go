package composition

import (
	"context"
	"errors"
	"os"
	"path/filepath"

	"github.com/rostrum-dev/rostrum/internal/composition/flv"
	"github.com/rostrum-dev/rostrum/internal/composition/output"
)

// startS3 starts the HLS writer of an S3 destination: one rendition per
// encoder configuration, each from its encode's stream, in the spool
// folder <SpoolDir>/<composition id>/<destination id> until uploaded.
func (c *running) startS3(bin string, d Destination, streams map[string]*flv.Stream, onState func(state, reason string)) (destination, error) {
	if c.m.cfg.Storage == nil {
		return nil, errors.New("no object storage is configured for S3 destinations")
	}
	spool := c.m.spoolDir()
	s3 := d.S3
	var rends []output.Rendition
	for _, e := range s3.Encoders {
		rends = append(rends, output.Rendition{
			Name: e.Name(), Width: e.Width, Height: e.Height, Framerate: e.Framerate, Bitrate: e.Bitrate,
			Source: streams[e.ARN],
		})
	}
	var thumbs []output.Thumbnail
	for _, t := range s3.Thumbnails {
		thumbs = append(thumbs, output.Thumbnail{IntervalSeconds: t.IntervalSeconds, Sequential: t.Sequential, Latest: t.Latest})
	}
	return output.StartHLS(output.HLSConfig{
		Storage: c.m.cfg.Storage, Bucket: s3.Bucket, Prefix: s3.Prefix,
		StageARN: c.spec.StageARN, StartedAt: c.spec.StartedAt,
		Renditions: rends, SegmentSeconds: s3.SegmentSeconds, Thumbnails: thumbs,
		SpoolDir: filepath.Join(spool, c.spec.ID, d.ID),
		FFmpeg:   bin, Logger: c.log, OnState: onState, RetryWindow: c.m.cfg.RetryWindow,
	})
}

// spoolDir is where S3 destinations write before uploading.
func (m *Manager) spoolDir() string {
	if m.cfg.SpoolDir == "" {
		return filepath.Join(os.TempDir(), "rostrum-composition-spool")
	}
	return m.cfg.SpoolDir
}

// RecoverS3 closes the composite recordings that a previous run of the
// server left in the spool folder when it was killed: what was written is
// uploaded, the playlists become VOD and recording-failed.json says what
// happened (output.RecoverHLS). Call it at start, before compositions run;
// it returns how many it closed.
func (m *Manager) RecoverS3(ctx context.Context) (int, error) {
	if m.cfg.Storage == nil {
		return 0, nil
	}
	return output.RecoverHLS(ctx, m.cfg.Storage, m.spoolDir(), m.log)
}
