"""Extract: signing, the client, the rate limit, paging, endpoint declarations, landing and storage."""
