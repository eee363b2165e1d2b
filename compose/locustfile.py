"""A placeholder load scenario for the compose stack: students browsing the catalogue through the gateway.

The real scenarios live in slo/load/; mount that folder instead once it exists (see docker-compose.yml).
"""

from locust import HttpUser, between, task


class BrowsingStudent(HttpUser):
    wait_time = between(0.5, 2.0)

    @task(5)
    def list_courses(self) -> None:
        self.client.get("/api/courses", name="/api/courses")

    @task(2)
    def search_courses(self) -> None:
        self.client.get("/api/courses/search", params={"q": "genetics"}, name="/api/courses/search")

    @task(1)
    def curriculum(self) -> None:
        self.client.get("/api/curriculum/11", name="/api/curriculum/{grade}")
