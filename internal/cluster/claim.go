package cluster

import (
	"context"
	"fmt"
	"time"
)

// TryClaim tries to make this node the one that does the work named key
// (delivering one sink's events): a session-level advisory lock on a
// connection of its own, held until release is called or the connection
// is lost. ok is false when another node holds it. held ends when the
// claim is lost (the connection to the database broke, so the lock may be
// another node's already) or released; work done under it must stop
// then.
//
// A node that dies holding a claim loses it with its connection: the
// database ends the session when the node's socket closes (kill -9) or,
// for a machine that vanished, when TCP keepalive gives up.
func (c *Cluster) TryClaim(ctx context.Context, key string) (held context.Context, release func(), ok bool, err error) {
	conn, err := c.pool.Acquire(ctx)
	if err != nil {
		return nil, nil, false, fmt.Errorf("cluster: claim %s: %w", key, err)
	}
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, hashtext($2))`, lockClaim, key).Scan(&ok); err != nil {
		conn.Release()
		return nil, nil, false, fmt.Errorf("cluster: claim %s: %w", key, err)
	}
	if !ok {
		conn.Release()
		return nil, nil, false, nil
	}
	hctx, cancel := context.WithCancel(c.ctx)
	done := make(chan struct{})
	// The claim lives as long as its connection answers; when it ends (by
	// release, the cluster closing, the caller's ctx or a failed ping)
	// the lock is given up with it.
	go func() {
		defer close(done)
		defer func() {
			uctx, ucancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer ucancel()
			// Unlocked, or the connection is dropped: either way the lock goes.
			if _, err := conn.Exec(uctx, `SELECT pg_advisory_unlock($1, hashtext($2))`, lockClaim, key); err != nil {
				conn.Conn().Close(uctx)
			}
			conn.Release()
		}()
		t := time.NewTicker(c.cfg.Lease / 3)
		defer t.Stop()
		for {
			select {
			case <-hctx.Done():
				return
			case <-ctx.Done():
				cancel()
				return
			case <-t.C:
			}
			pctx, pcancel := context.WithTimeout(hctx, c.cfg.Lease/3)
			err := conn.Ping(pctx)
			pcancel()
			if err != nil && hctx.Err() == nil {
				c.log.Warn("lost a claim: its database connection failed", "claim", key, "err", err)
				cancel()
				return
			}
		}
	}()
	release = func() {
		cancel()
		<-done
	}
	return hctx, release, true, nil
}
