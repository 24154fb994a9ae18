package transform

import "sort"

func sortFuncs(fs []Func) { sort.Slice(fs, func(i, j int) bool { return fs[i].Name < fs[j].Name }) }
