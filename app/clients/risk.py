"""The risk-profile questionnaire: questions with scored answers, declared as data.

The total of the chosen answers' points gives the profile: up to the ``conservative`` limit
is conservative, up to the ``moderate`` limit moderate, above it aggressive. The limits are a
setting (``CRM_RISK_PROFILE_LIMITS``). Every completed questionnaire is kept (RiskAssessment);
the newest sets the client's risk profile.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import select

from app.clients.models import Client, RiskAssessment
from app.core.errors import FieldError, NotFound
from app.core.types import utcnow
from app.extensions import db
from app.security.scoping import Actor, current_actor


@dataclass(frozen=True)
class Question:
    key: str
    text: str
    answers: tuple[tuple[str, str, int], ...]
    """(answer key, answer text, points)"""

    def points(self, answer: str) -> int:
        for key, _, points in self.answers:
            if key == answer:
                return points
        raise FieldError(f"choose one of the answers to: {self.text}", self.key)


QUESTIONS: tuple[Question, ...] = (
    Question(
        "horizon",
        "How long will this money stay invested?",
        (
            ("under_1y", "Less than a year", 0),
            ("1_3y", "One to three years", 2),
            ("3_7y", "Three to seven years", 4),
            ("over_7y", "More than seven years", 6),
        ),
    ),
    Question(
        "drawdown",
        "Your investments fall 20% in a month. What do you do?",
        (
            ("sell_all", "Sell everything", 0),
            ("sell_some", "Sell some", 2),
            ("hold", "Hold and wait", 4),
            ("buy_more", "Buy more", 6),
        ),
    ),
    Question(
        "objective",
        "What matters most to you?",
        (
            ("preserve", "Keeping the capital safe", 0),
            ("income", "A steady income", 2),
            ("balanced", "Some growth with some safety", 4),
            ("growth", "The highest growth", 6),
        ),
    ),
    Question(
        "experience",
        "What have you invested in before?",
        (
            ("none", "Nothing yet", 0),
            ("deposits", "Bank deposits and savings schemes", 1),
            ("funds_shares", "Mutual funds or shares", 3),
            ("derivatives", "Derivatives or active trading", 5),
        ),
    ),
    Question(
        "income",
        "How stable is your income?",
        (
            ("unstable", "Irregular or at risk", 0),
            ("stable", "Stable", 2),
            ("surplus", "Stable, with a regular surplus", 4),
        ),
    ),
    Question(
        "share_of_wealth",
        "What share of your wealth is this investment?",
        (
            ("over_50", "More than half", 0),
            ("25_50", "A quarter to a half", 2),
            ("10_25", "A tenth to a quarter", 3),
            ("under_10", "Less than a tenth", 4),
        ),
    ),
)
QUESTIONS_BY_KEY = {question.key: question for question in QUESTIONS}
MAX_SCORE = sum(max(points for _, _, points in q.answers) for q in QUESTIONS)
DEFAULT_LIMITS = {"conservative": 10, "moderate": 20}


def profile_for(score: int) -> str:
    limits = {**DEFAULT_LIMITS, **current_app.config.get("CRM_RISK_PROFILE_LIMITS", {})}
    if score <= limits["conservative"]:
        return "conservative"
    if score <= limits["moderate"]:
        return "moderate"
    return "aggressive"


def score_answers(answers: Mapping[str, str]) -> tuple[int, list[tuple[Question, str, int]]]:
    """The total and each question's points; every question must have a known answer."""
    unknown = sorted(set(answers) - set(QUESTIONS_BY_KEY))
    if unknown:
        raise FieldError(f"unknown question(s): {', '.join(unknown)}.", unknown[0])
    breakdown = []
    for question in QUESTIONS:
        answer = answers.get(question.key)
        if not answer:
            raise FieldError(f"is unanswered: {question.text}", question.key)
        breakdown.append((question, answer, question.points(answer)))
    return sum(points for _, _, points in breakdown), breakdown


def assess_risk(
    client_id: int, answers: Mapping[str, str], actor: Actor | None = None
) -> RiskAssessment:
    """Score a completed questionnaire, keep it, and set the client's risk profile from it
    (the caller commits). A client the actor cannot see is not found."""
    actor = actor if actor is not None else current_actor()
    client = db.session.scalar(select(Client).where(Client.id == client_id))
    if client is None:
        raise NotFound("no such client.")
    score, _ = score_answers(answers)
    assessment = RiskAssessment(
        client_id=client.id,
        answers=json.dumps({q.key: answers[q.key] for q in QUESTIONS}),
        score=score,
        profile=profile_for(score),
        assessed_by_id=actor.user_id if actor is not None else None,
        assessed_at=utcnow(),
    )
    db.session.add(assessment)
    client.risk_score = score
    client.risk_profile = assessment.profile
    client.risk_assessed_at = assessment.assessed_at
    db.session.flush()
    return assessment
