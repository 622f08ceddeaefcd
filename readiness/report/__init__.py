"""What we say: the sign-off, its HTML and Markdown, the issue builders."""
