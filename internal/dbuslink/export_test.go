package dbuslink

// Published returns the seq of the last status Run has emitted.
func (s *Service) Published() uint64 { return s.shown.load() }
