// Package vocab holds the names husk's layers must agree on, each list
// once: the hook points (the config file names them, the hook engine
// defines their events, the policy SDK parses them) and the handler names
// (the config file, annotations, the handler manager and the handlers
// themselves use them).
//
// It imports nothing of husk's and only the standard library's slices, so
// that every layer can use it, down to a policy module built for wasip1 and
// the guest agent.
package vocab
