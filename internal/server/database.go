package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/rostrum-dev/rostrum/internal/config"
	"github.com/rostrum-dev/rostrum/internal/store"
	"github.com/rostrum-dev/rostrum/internal/store/postgres"
	"github.com/rostrum-dev/rostrum/internal/store/sqlite"
)

// openDatabase opens the configured database: PostgreSQL when --database-url
// is set, else the embedded SQLite file in the data dir.
func openDatabase(ctx context.Context, cfg *config.Config) (store.Store, error) {
	if cfg.DatabaseURL != "" {
		s, err := postgres.Open(ctx, cfg.DatabaseURL)
		if err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
		return s, nil
	}
	s, err := sqlite.Open(filepath.Join(cfg.DataDir, "rostrum.db"))
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	return s, nil
}

// nodeIDFile keeps, in the data dir, the node id generated on a node's
// first start when the database is shared (PostgreSQL).
const nodeIDFile = "node-id"

// localNodeID is the generated node id of a node whose database is
// PostgreSQL: kept in its data dir, not in the database. The database may
// be shared by other nodes, and a node id kept there would be every
// node's: each starting node would then end the others' live sessions as
// its own previous run's. The data dir is the node's own (its lock allows
// one server), so the id it keeps is this node's, and a restart finds it.
func localNodeID(cfg *config.Config) (string, error) {
	path := filepath.Join(cfg.DataDir, nodeIDFile)
	if b, err := os.ReadFile(path); err == nil {
		id := strings.TrimSpace(string(b))
		if id == "" {
			return "", fmt.Errorf("node id: %s is empty; remove it or set --node-id", path)
		}
		return id, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("node id: %w", err)
	}
	var b [8]byte
	rand.Read(b[:])
	id := "node-" + hex.EncodeToString(b[:])
	// Written whole before it is renamed into place: a crash leaves the
	// old state (no file) or the new one, never half an id.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("node id: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("node id: %w", err)
	}
	return id, nil
}
