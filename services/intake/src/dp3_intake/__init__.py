"""DP3 intake: resumable uploads and previews from field devices (docs/intake.md)."""
