"""A synthetic city for trying the hub: people, legal entities and addresses of 赤峰市, from a fixed seed."""
