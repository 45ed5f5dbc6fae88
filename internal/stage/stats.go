package stage

// Stats is what the stage layer holds now, for metrics.
type Stats struct {
	// Stages are the stages with live state on this node; Sessions, those
	// of them with a session running (its grace period included).
	Stages, Sessions int
	// Participants are connected (their events channel or media is up).
	Participants int
}

// Stats counts the live stages, sessions and participants. It takes the
// manager's lock and each stage's in turn, briefly.
func (m *Manager) Stats() Stats {
	m.mu.Lock()
	stages := make([]*Stage, 0, len(m.stages))
	for _, st := range m.stages {
		stages = append(stages, st)
	}
	m.mu.Unlock()
	var s Stats
	for _, st := range stages {
		st.mu.Lock()
		if !st.ended {
			s.Stages++
			if st.sessionID != "" {
				s.Sessions++
			}
			for _, p := range st.participants {
				if p.present {
					s.Participants++
				}
			}
		}
		st.mu.Unlock()
	}
	return s
}
