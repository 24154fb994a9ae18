// Package codec holds Sluice's text codecs: lines, jsonl, json, csv and xml.
// Each registers itself with adapters.RegisterCodec from init, together with
// the Spec that documents and decodes its options; a program gets them all
// with a blank import of this package.
//
// Decoders read a stream record by record, in constant memory (bounded by
// the largest record and the codec's max_* option), and report for every
// record its number, line and the exact byte offset just past it in the
// original (undecoded) input, so that a source can resume there with
// adapters.ReaderAtOffset. A malformed record is an *adapters.RecordError
// and decoding goes on with the next record; see docs/codecs.md for the
// formats that cannot resynchronise (a broken JSON array or XML document).
//
// Decoders and encoders are not safe for concurrent use; the codecs that
// build them are immutable and may be shared.
package codec
