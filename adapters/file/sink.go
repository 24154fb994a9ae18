package file

import (
	"context"

	"github.com/sluicehq/sluice/adapters/filekit"
)

// openRoot opens base_dir as a filekit.RootFS, which no rendered path can
// leave, neither by ".." nor by symbolic links.
func openRoot(base string) func(context.Context) (filekit.WriteFS, error) {
	return func(context.Context) (filekit.WriteFS, error) {
		r, err := filekit.OpenRoot(base)
		if err != nil {
			return nil, err
		}
		return r, nil
	}
}
