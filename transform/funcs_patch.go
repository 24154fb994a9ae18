package transform

import (
	"fmt"
	"reflect"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm/runtime"

	"github.com/sluicehq/sluice/adapters"
)

// The patcher rewrites every expression's syntax tree after a first type
// check and before the final one:
//
//   - field access with a constant name on a record, an object or meta
//     (record.amount, meta["path"]) becomes a call of a fieldGetter, which
//     reads a map directly instead of through reflection, several times
//     faster and without an allocation;
//   - arithmetic and comparison nodes that may involve a decimal become calls
//     of the decimal-aware operators of decimal_ops.go;
//   - these calls are typed calls (typedCall), which the VM makes without
//     allocating an argument slice;
//   - lookup(table, key) gets the Runner's lookup tables as a hidden first
//     argument (lookupsVar, a field of Env);
//   - constant arguments that are costly to prepare (regular expressions,
//     decimal literals, time zones) are prepared once and embedded in the
//     program; checkConstants reports those that are invalid.

// lookupsVar is the Env field through which lookup reaches the tables.
const lookupsVar = "__lookups"

// constArg is an argument that, when a constant string, is prepared at
// compile time.
type constArg struct {
	index   int
	prepare func(s string) (any, error) // nil value: nothing to embed
	typ     reflect.Type
}

// constArgs lists, per function, the arguments prepared at compile time.
// The library files fill it from init.
var constArgs = map[string][]constArg{}

var (
	recordType = reflect.TypeOf(adapters.Record{})
	metaType   = reflect.TypeOf(map[string]string{})
)

func init() {
	RegisterOption(expr.Patch(patcher{}))
}

// fieldGetter returns expr's member access (runtime.Fetch) of key, with a
// fast path for the maps records are made of. A missing key gives the zero
// value, as in expr: nil for a record.
func fieldGetter(key string) func(any) any {
	return func(v any) any {
		switch m := v.(type) {
		case adapters.Record:
			return m[key]
		case map[string]string:
			return m[key]
		}
		return runtime.Fetch(v, key)
	}
}

// metaGetter returns the access of key in meta ("" when missing).
func metaGetter(key string) func(any) string {
	return func(v any) string {
		m, _ := v.(map[string]string)
		return m[key]
	}
}

// typedCall returns a call of fn, a Go function of one of the signatures
// expr calls directly (vm.FuncTypes: func(any) any, func(any, any) bool...),
// typed t. Functions registered as builtin.Function.Func are called with an
// argument slice that the VM allocates on every run of the program; these
// are called with the values on its stack.
func typedCall(fn any, t reflect.Type, args ...ast.Node) *ast.CallNode {
	// Both types are set: the final check does not visit a call whose type
	// is set, and the compiler picks the typed call by the callee's type.
	callee := &ast.ConstantNode{Value: fn}
	callee.SetType(reflect.TypeOf(fn))
	call := &ast.CallNode{Callee: callee, Arguments: args}
	call.SetType(t)
	return call
}

type patcher struct{}

func (patcher) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.MemberNode:
		if n.Optional || n.Method {
			return
		}
		prop, ok := n.Property.(*ast.StringNode)
		if !ok {
			return
		}
		t := n.Node.Type()
		if t != recordType && t != metaType && !unknownType(t) {
			return
		}
		var call *ast.CallNode
		if t == metaType {
			call = typedCall(metaGetter(prop.Value), stringType, n.Node)
		} else {
			call = typedCall(fieldGetter(prop.Value), n.Type(), n.Node)
		}
		ast.Patch(node, call)
	case *ast.BinaryNode:
		op, ok := decOps[n.Operator]
		if !ok || !rewriteOperands(n.Left.Type(), n.Right.Type()) {
			return
		}
		if n.Operator == "==" || n.Operator == "!=" {
			if isNil(n.Left) || isNil(n.Right) {
				return
			}
		}
		t, err := op.resultType(n.Operator, n.Left.Type(), n.Right.Type())
		if err != nil {
			// the named function's Validate makes the final check report it
			call := &ast.CallNode{Callee: &ast.IdentifierNode{Value: op.fn}, Arguments: []ast.Node{n.Left, n.Right}}
			call.SetType(anyType)
			ast.Patch(node, call)
			return
		}
		if op.isCmp() {
			ast.Patch(node, typedCall(op.typedCmp, boolType, n.Left, n.Right))
		} else {
			ast.Patch(node, typedCall(op.typedArith, t, n.Left, n.Right))
		}
	case *ast.UnaryNode:
		if n.Operator != "-" {
			return
		}
		t := n.Node.Type()
		if t != decimalType && !unknownType(t) {
			return
		}
		if t != decimalType {
			t = anyType
		}
		ast.Patch(node, typedCall(negate, t, n.Node))
	case *ast.CallNode:
		id, ok := n.Callee.(*ast.IdentifierNode)
		if !ok {
			return
		}
		if id.Value == "lookup" {
			if len(n.Arguments) > 0 {
				if first, ok := n.Arguments[0].(*ast.IdentifierNode); ok && first.Value == lookupsVar {
					return
				}
			}
			n.Arguments = append([]ast.Node{&ast.IdentifierNode{Value: lookupsVar}}, n.Arguments...)
			return
		}
		for _, c := range constArgs[id.Value] {
			if c.index >= len(n.Arguments) {
				continue
			}
			s, ok := n.Arguments[c.index].(*ast.StringNode)
			if !ok {
				continue
			}
			v, err := c.prepare(s.Value)
			if err != nil || v == nil {
				continue // checkConstants reports the error
			}
			k := &ast.ConstantNode{Value: v}
			k.SetType(c.typ)
			ast.Patch(&n.Arguments[c.index], k)
		}
	}
}

func isNil(n ast.Node) bool {
	_, ok := n.(*ast.NilNode)
	return ok
}

// checkConstants reports constant arguments the patcher could not prepare:
// a regular expression that does not compile, an unknown time zone, a
// decimal literal that is not a number.
func checkConstants(root ast.Node) error {
	var c constChecker
	ast.Walk(&root, &c)
	return c.err
}

type constChecker struct{ err error }

func (c *constChecker) Visit(node *ast.Node) {
	if c.err != nil {
		return
	}
	n, ok := (*node).(*ast.CallNode)
	if !ok {
		return
	}
	id, ok := n.Callee.(*ast.IdentifierNode)
	if !ok {
		return
	}
	for _, a := range constArgs[id.Value] {
		if a.index >= len(n.Arguments) {
			continue
		}
		if s, ok := n.Arguments[a.index].(*ast.StringNode); ok {
			if _, err := a.prepare(s.Value); err != nil {
				c.err = fmt.Errorf("%s: argument %d: %v", id.Value, a.index+1, err)
				return
			}
		}
	}
}
