"""The simulated org by resource area, as the connector is split: each module holds its objects,
the org's state and changes for them (a mixin of oktasim.org.Org), their JSON shapes, their
search/filter dialects, their routes and handlers, and their part of /__sim/state."""
