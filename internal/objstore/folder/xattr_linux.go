package folder

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

const contentTypeAttr = "user.content-type"

// errNoXattr: the filesystem keeps no user extended attributes.
var errNoXattr = errors.New("no user extended attributes")

func setContentType(f *os.File, ct string) error {
	err := unix.Fsetxattr(int(f.Fd()), contentTypeAttr, []byte(ct), 0)
	if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP) {
		return errNoXattr
	}
	return err
}

func contentType(f *os.File) (string, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Fgetxattr(int(f.Fd()), contentTypeAttr, buf)
		if errors.Is(err, unix.ERANGE) && len(buf) < 64<<10 {
			buf = make([]byte, 4*len(buf))
			continue
		}
		if err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
}
