package tracingpolicy

// TypeModule is a struct module * (do_init_module, free_module): the
// module's name, whether its signature was verified and the taint flags it
// sets, reported as Tetragon's module_arg. Not matched: Tetragon has no
// operator for it.
const TypeModule ArgType = "module"
