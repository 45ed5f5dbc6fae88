package composition

import (
	"errors"

	"github.com/rostrum-dev/rostrum/internal/composition/flv"
)

// startS3 starts the HLS writer of an S3 destination.
func (c *running) startS3(bin string, d Destination, streams map[string]*flv.Stream, onState func(state, reason string)) (destination, error) {
	return nil, errors.New("S3 destinations are not built yet")
}
