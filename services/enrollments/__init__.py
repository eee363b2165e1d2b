"""The enrollments service: enrolments, progress, course completions and the enrolment saga."""
