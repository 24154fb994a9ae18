package filekit

import (
	"errors"
	"syscall"

	"github.com/sluicehq/sluice/adapters"
)

// Classify gives a filesystem error its kind for a sink: a full disk or
// quota is Unavailable (the target as a whole cannot take data: back off,
// charge no attempt); a path escaping the base directory is Permanent;
// everything else, including permission denied and a read-only filesystem,
// is transient: an operator can fix it, and the messages are retried, then
// dead-lettered after max_attempts and replayable. An error already
// classified Permanent or Unavailable keeps its kind.
func Classify(err error) error { return classify(err) }

func classify(err error) error {
	if err == nil || adapters.KindOf(err) != adapters.Transient {
		return err
	}
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return adapters.UnavailableError(err)
	case errors.Is(err, ErrEscapes), isRootEscape(err):
		return adapters.PermanentError(err)
	}
	return err
}
