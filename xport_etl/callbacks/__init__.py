"""Message callbacks: the receiver, its inbox and the refresh they drive."""
