package e2e

import "github.com/rostrum-dev/rostrum/internal/config"

type configT = config.Config
