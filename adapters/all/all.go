// Package all registers every built-in adapter, codec and stage: import it
// for its side effects, as cmd/sluice does, to build a binary with the
// standard set.
package all

import (
	_ "github.com/sluicehq/sluice/adapters/exec" // exec source and sink: programs in any language
	_ "github.com/sluicehq/sluice/adapters/file"
	_ "github.com/sluicehq/sluice/adapters/generate"
	_ "github.com/sluicehq/sluice/adapters/http" // http source (server) and sink (client)
	_ "github.com/sluicehq/sluice/adapters/mysql"
	_ "github.com/sluicehq/sluice/adapters/sftp"
	_ "github.com/sluicehq/sluice/adapters/stdout"
	_ "github.com/sluicehq/sluice/transform/codec"
	_ "github.com/sluicehq/sluice/transform/codec/copybook"
	_ "github.com/sluicehq/sluice/transform/codec/fixedwidth"
)
