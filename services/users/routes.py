from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from services.kit.deps import ClientDep, CurrentUser, SessionDep
from services.users import service
from services.users.deps import OFFER_PROFILE, AuthDep
from services.users.schemas import (
    LoginRequest,
    ProfileUpdate,
    RefreshRequest,
    RegisterRequest,
    TokenResponse,
    UserResponse,
)

router = APIRouter()


@router.post("/auth/register", status_code=status.HTTP_201_CREATED, tags=["auth"])
async def register(body: RegisterRequest, db: SessionDep, ctx: AuthDep, client: ClientDep) -> UserResponse:
    """Registers a student account."""
    return await service.register(db=db, ctx=ctx, client=client, request=body)


@router.post("/auth/login", tags=["auth"])
async def login(body: LoginRequest, db: SessionDep, ctx: AuthDep, client: ClientDep) -> TokenResponse:
    """Logs in with email and password; returns an access token and a refresh token."""
    return await service.login(
        db=db, ctx=ctx, client=client, email=body.email, password=body.password.get_secret_value()
    )


@router.post("/auth/refresh", tags=["auth"])
async def refresh(body: RefreshRequest, db: SessionDep, ctx: AuthDep, client: ClientDep) -> TokenResponse:
    """Trades a refresh token for new tokens; the old refresh token stops working."""
    return await service.refresh(db=db, ctx=ctx, client=client, refresh_token=body.refresh_token.get_secret_value())


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT, tags=["auth"])
async def logout(identity: CurrentUser, db: SessionDep, ctx: AuthDep, client: ClientDep) -> Response:
    """Signs out the current session everywhere it is used."""
    await service.logout(db=db, ctx=ctx, client=client, identity=identity)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/users/profile", tags=["users"], dependencies=[OFFER_PROFILE])
async def get_profile(identity: CurrentUser, db: SessionDep) -> UserResponse:
    """Gets the caller's account and profile."""
    return await service.get_user(db=db, user_id=identity.user_id)


@router.put("/users/profile", tags=["users"])
async def update_profile(body: ProfileUpdate, identity: CurrentUser, db: SessionDep, ctx: AuthDep) -> UserResponse:
    """Changes the caller's profile fields that are sent."""
    return await service.update_profile(db=db, ctx=ctx, user_id=identity.user_id, changes=body)


@router.delete("/users/account", status_code=status.HTTP_204_NO_CONTENT, tags=["users"])
async def delete_account(identity: CurrentUser, db: SessionDep, ctx: AuthDep, client: ClientDep) -> Response:
    """Deletes the caller's account: personal data anonymised, every session revoked."""
    await service.delete_account(db=db, ctx=ctx, client=client, user_id=identity.user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/users/{user_id}", tags=["users"])
async def get_user(user_id: uuid.UUID, identity: CurrentUser, db: SessionDep) -> UserResponse:
    """Gets a user: the user themself, or an admin (the enrolment saga validates students here)."""
    identity.require_self_or_admin(user_id)
    return await service.get_user(db=db, user_id=user_id)
