"""The demo catalogue: NEET and CBSE biology courses for class 11, class 12 and repeaters."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from services.contracts.events import CourseCreated, CoursePublished
from services.courses import repository
from services.courses.events import course_facts
from services.courses.models import Course, CurriculumTopic, Lesson
from services.courses.schemas import CourseCreate
from services.courses.search import search_index_for
from services.kit.uow import UnitOfWork

CATALOGUE = Path(__file__).with_name("demo_catalogue.json")


def _curriculum(data: dict[str, list[dict[str, object]]]) -> list[CurriculumTopic]:
    rows = []
    for grade, units in data.items():
        for unit_position, unit in enumerate(units, start=1):
            topics = unit["topics"]
            assert isinstance(topics, list)
            for topic_position, topic in enumerate(topics, start=1):
                rows.append(
                    CurriculumTopic(
                        grade=grade,
                        unit_position=unit_position,
                        unit_title=str(unit["title"]),
                        topic_position=topic_position,
                        topic_title=str(topic),
                    )
                )
    return rows


async def seed_catalogue(*, db: AsyncSession) -> int:
    """Adds the demo courses, lessons and curriculum unless the catalogue has courses; returns courses added."""
    if await repository.count_courses(db=db):
        return 0
    data = json.loads(CATALOGUE.read_text(encoding="utf-8"))
    courses: list[Course] = []
    lessons: list[Lesson] = []
    for item in data["courses"]:
        request = CourseCreate.model_validate(item)
        course = Course(id=uuid.uuid4(), seats_taken=0, **request.model_dump(exclude={"lessons"}))
        courses.append(course)
        lessons += [
            Lesson(course_id=course.id, position=position, **lesson.model_dump())
            for position, lesson in enumerate(request.lessons, start=1)
        ]
    await repository.add(db=db, rows=courses)
    await repository.add(db=db, rows=lessons)
    if not await repository.count_curriculum_topics(db=db):
        await repository.add(db=db, rows=_curriculum(data["curriculum"]))
    search = search_index_for(db.get_bind().dialect.name)
    for course in courses:
        await search.index_course(db=db, course_id=course.id)
        await UnitOfWork.of(db).record(CourseCreated(**course_facts(course)))
        if course.is_published:
            await UnitOfWork.of(db).record(CoursePublished(**course_facts(course)))
    return len(courses)
