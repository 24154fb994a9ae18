package adapters

import (
	"fmt"
	"sort"
	"strings"
	"sync"
)

type kind string

const (
	kindSource kind = "source"
	kindSink   kind = "sink"
	kindCodec  kind = "codec"
)

type entry struct {
	spec   *Spec
	source SourceFactory
	sink   SinkFactory
	codec  CodecFactory
}

var (
	regMu    sync.RWMutex
	registry = map[kind]map[string]*entry{kindSource: {}, kindSink: {}, kindCodec: {}}
)

func register(k kind, name string, spec *Spec, e *entry, nilFactory bool) {
	if name == "" {
		panic(fmt.Sprintf("adapters: Register%s with an empty name", title(k)))
	}
	if nilFactory {
		panic(fmt.Sprintf("adapters: Register%s %q with a nil factory", title(k), name))
	}
	if spec == nil {
		panic(fmt.Sprintf("adapters: Register%s %q with a nil spec", title(k), name))
	}
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := registry[k][name]; dup {
		panic(fmt.Sprintf("adapters: Register%s called twice for %q", title(k), name))
	}
	e.spec = spec
	registry[k][name] = e
}

func title(k kind) string { return strings.ToUpper(string(k[:1])) + string(k[1:]) }

// RegisterSource makes a source type available to pipeline configs under
// name. It is meant to be called from init; it panics when name is empty, the
// spec or factory is nil, or name is already registered.
func RegisterSource(name string, spec *Spec, f SourceFactory) {
	register(kindSource, name, spec, &entry{source: f}, f == nil)
}

// RegisterSink makes a sink type available under name. It panics like
// RegisterSource.
func RegisterSink(name string, spec *Spec, f SinkFactory) {
	register(kindSink, name, spec, &entry{sink: f}, f == nil)
}

// RegisterCodec makes a codec type available under name. It panics like
// RegisterSource, and also for the reserved name "none".
func RegisterCodec(name string, spec *Spec, f CodecFactory) {
	if name == NoCodec {
		panic(`adapters: RegisterCodec: "none" is reserved`)
	}
	register(kindCodec, name, spec, &entry{codec: f}, f == nil)
}

func lookup(k kind, name string) (*entry, error) {
	regMu.RLock()
	defer regMu.RUnlock()
	if e, ok := registry[k][name]; ok {
		return e, nil
	}
	return nil, fmt.Errorf("unknown %s type %q (known: %s)", k, name, strings.Join(namesLocked(k), ", "))
}

func namesLocked(k kind) []string {
	names := make([]string, 0, len(registry[k]))
	for n := range registry[k] {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func names(k kind) []string {
	regMu.RLock()
	defer regMu.RUnlock()
	return namesLocked(k)
}

// Sources returns the registered source types, sorted.
func Sources() []string { return names(kindSource) }

// Sinks returns the registered sink types, sorted.
func Sinks() []string { return names(kindSink) }

// Codecs returns the registered codec types, sorted ("none" is implicit).
func Codecs() []string { return names(kindCodec) }

// SourceSpec returns the spec of a source type, or an error listing the
// known types.
func SourceSpec(name string) (*Spec, error) {
	e, err := lookup(kindSource, name)
	if err != nil {
		return nil, err
	}
	return e.spec, nil
}

// SinkSpec returns the spec of a sink type, or an error listing the known ones.
func SinkSpec(name string) (*Spec, error) {
	e, err := lookup(kindSink, name)
	if err != nil {
		return nil, err
	}
	return e.spec, nil
}

// CodecSpec returns the spec of a codec type, or an error listing the known ones.
func CodecSpec(name string) (*Spec, error) {
	e, err := lookup(kindCodec, name)
	if err != nil {
		return nil, err
	}
	return e.spec, nil
}

// NewSource builds a source of the registered type from a decoded config.
func NewSource(typ string, conf *Config, res Resources) (Source, error) {
	e, err := lookup(kindSource, typ)
	if err != nil {
		return nil, err
	}
	return e.source(conf, res)
}

// NewSink builds a sink of the registered type from a decoded config.
func NewSink(typ string, conf *Config, res Resources) (Sink, error) {
	e, err := lookup(kindSink, typ)
	if err != nil {
		return nil, err
	}
	return e.sink(conf, res)
}

// NewCodec decodes a codec configuration ("csv" or {type: csv, ...}) and
// builds the codec. A nil Codec with a nil error means codec "none".
func NewCodec(raw any, opts DecodeOptions) (Codec, error) {
	d := &decoder{opts: &opts}
	v, ok := d.codec(opts.Path, raw)
	if !ok {
		return nil, d.errs
	}
	c, _ := v.(Codec)
	return c, nil
}
