//go:build !linux

package folder

import (
	"errors"
	"os"
)

// errNoXattr: extended attributes are used on Linux only; elsewhere objects
// read back with the content type of their key's extension.
var errNoXattr = errors.New("no user extended attributes")

func setContentType(*os.File, string) error { return errNoXattr }

func contentType(*os.File) (string, error) { return "", errNoXattr }
