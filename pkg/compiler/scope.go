package compiler

import tp "github.com/tetragon-lite/tetragon/pkg/tracingpolicy"

// Scope is what part of the node a policy applies to: the containers of
// the pods of Namespace ("" : every namespace) that Pods selects (nil:
// every pod), and of those the containers Containers selects (nil: every
// container; Tetragon's only key is "name", the container's name).
type Scope struct {
	Namespace  string
	Pods       *tp.LabelSelector
	Containers *tp.LabelSelector
}
