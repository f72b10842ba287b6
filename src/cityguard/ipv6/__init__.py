"""The IPv6 area: the site's addressing plan (`cityguard ipv6 plan`) and its phased rollout
(`cityguard ipv6 rollout`) with the IPv6 checks as a gate."""
