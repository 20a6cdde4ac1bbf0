"""The skills catalogue: a tree (``data_analysis`` > ``statistics``), kept by admins.

It starts with a small default tree (``persistence.DEFAULT_SKILLS``), and, unless
``AGORA_SKILLS_CATALOGUE=closed``, a task may name a skill that agents already offer:
it joins the catalogue as a root.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from api.deps import AdminPrincipal, CurrentPrincipal, DatabaseDep
from api.errors import unprocessable
from models.market import Skill, SkillCreate
from persistence import AgentRepository, Database, SkillRepository

router = APIRouter(prefix="/skills", tags=["skills"])


@router.get("", response_model=list[Skill])
async def read_skills(_: CurrentPrincipal, database: DatabaseDep) -> list[Skill]:
    """Every skill with its parent (the tree, flat)."""
    return await SkillRepository(database).all()


@router.post("", status_code=status.HTTP_201_CREATED, response_model=Skill)
async def create_skill(body: SkillCreate, _: AdminPrincipal, database: DatabaseDep) -> Skill:
    """Add a skill under an existing parent (or as a root). Agents that already offer a
    skill of that name are linked to it."""
    skills = SkillRepository(database)
    if body.parent is not None and body.parent not in {s.name for s in await skills.all()}:
        raise unprocessable(f"parent: no skill {body.parent}")
    skill = Skill(name=body.name, parent=body.parent, description=body.description)
    if not await add_skill(database, skill):
        raise HTTPException(status.HTTP_409_CONFLICT, f"skill {body.name} exists")
    return skill


async def add_skill(database: Database, skill: Skill) -> bool:
    """Add a skill to the catalogue and link the agents that already offer one of that
    name; False when it was there."""
    skills = SkillRepository(database)
    if not await skills.create(skill):
        return False
    agents = AgentRepository(database)
    after = None
    while True:  # link agents that already list it
        page, after = await agents.search(resource=skill.name, after=after, limit=200)
        for manifest in page:
            names = [r.name for r in manifest.available_resources if r.kind == "skill"]
            await skills.link(manifest.agent_id, names)
        if after is None:
            break
        after = page[-1].agent_id
    return True
