package config

import (
	"errors"
	"flag"
	"strings"
)

// databaseFlagDefs registers --database-url (ROSTRUM_DATABASE_URL): the
// name is a contract, scripts outside the project use it.
func (c *Config) databaseFlagDefs(fs *flag.FlagSet) {
	fs.StringVar(&c.DatabaseURL, "database-url", "", "`postgres://user:password@host:port/db?sslmode=…`: keep the state in this PostgreSQL database instead of the embedded SQLite file in --data-dir (recordings and the data dir's lock stay in --data-dir)")
}

func (c *Config) validateDatabase() error {
	if c.DatabaseURL == "" {
		return nil
	}
	// The URL is not repeated in the error: it may hold a password.
	if !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		return errors.New("--database-url: must be a PostgreSQL URL, postgres://…")
	}
	return nil
}
