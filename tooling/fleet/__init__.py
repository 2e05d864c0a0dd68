"""The replica fleet: in the rehearsal, a local server standing for the model Service, whose
simulated replicas follow the Service's EndpointSlices on the real API server and whose CPU
comes from the work real Locust gives them (see server.py, endpoints.py, replicas.py)."""
