package transform

import (
	"fmt"
	"reflect"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/vm/runtime"

	"github.com/sluicehq/sluice/adapters"
)

// The patcher rewrites every expression's syntax tree after a first type
// check and before the final one:
//
//   - field access with a constant name on a record, an object or meta
//     (record.amount, meta["path"]) becomes a call of fetchField, which
//     reads a map directly instead of through reflection, several times
//     faster and without an allocation;
//   - arithmetic and comparison nodes that may involve a decimal become calls
//     of the decimal-aware operators of decimal_ops.go;
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

// fieldFn is the internal function of a rewritten field access.
const fieldFn = "__sluice_field"

var (
	recordType = reflect.TypeOf(adapters.Record{})
	metaType   = reflect.TypeOf(map[string]string{})
)

func init() {
	RegisterOption(expr.Patch(patcher{}))
	RegisterOption(func(c *conf.Config) {
		c.Functions[fieldFn] = &builtin.Function{Name: fieldFn, Func: fetchField,
			Validate: func(args []reflect.Type) (reflect.Type, error) {
				if len(args) == 2 && args[0] == metaType {
					return stringType, nil
				}
				return anyType, nil
			}}
	})
}

// fetchField is expr's member access (runtime.Fetch) with a fast path for
// the maps records are made of. A missing key gives the zero value, as in
// expr: nil for a record, "" for meta.
func fetchField(args ...any) (any, error) {
	key, _ := args[1].(string)
	switch m := args[0].(type) {
	case adapters.Record:
		return m[key], nil
	case map[string]string:
		return m[key], nil
	}
	return runtime.Fetch(args[0], args[1]), nil
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
		call := &ast.CallNode{Callee: &ast.IdentifierNode{Value: fieldFn}, Arguments: []ast.Node{n.Node, prop}}
		call.SetType(n.Type())
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
			t = anyType // the final check reports it
		}
		call := &ast.CallNode{Callee: &ast.IdentifierNode{Value: op.fn}, Arguments: []ast.Node{n.Left, n.Right}}
		call.SetType(t)
		ast.Patch(node, call)
	case *ast.UnaryNode:
		if n.Operator != "-" {
			return
		}
		t := n.Node.Type()
		if t != decimalType && !unknownType(t) {
			return
		}
		call := &ast.CallNode{Callee: &ast.IdentifierNode{Value: negFn}, Arguments: []ast.Node{n.Node}}
		call.SetType(t)
		ast.Patch(node, call)
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
