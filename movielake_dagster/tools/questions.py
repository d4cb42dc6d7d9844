"""The SPEC's business questions as SQL over the access layer's star schema.

The SQL is plain ANSI over the tables ``fct_rating``, ``dim_movie``, ``dim_user``, ``dim_date`` and
``bridge_movie_genre``, so it runs unchanged on Spark SQL, DuckDB and Athena.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Question:
    key: str
    text: str
    sql: str  # may use {movie_id} and {user_id}


EXAMPLE_MOVIE_SQL = """
SELECT movie_id FROM fct_rating GROUP BY movie_id ORDER BY COUNT(*) DESC, movie_id LIMIT 1
"""
EXAMPLE_USER_SQL = "SELECT MIN(user_id) AS user_id FROM fct_rating"

QUESTIONS = (
    Question(
        "users_who_rated_movie",
        "How many users have rated movie {movie_id}?",
        """SELECT m.title, COUNT(DISTINCT f.user_id) AS users
           FROM fct_rating f JOIN dim_movie m ON m.movie_id = f.movie_id
           WHERE f.movie_id = {movie_id} GROUP BY m.title""",
    ),
    Question(
        "movies_rated_by_user",
        "Which movies has user {user_id} rated? (first 10 by time)",
        """SELECT m.title, m.year, f.rating, f.rated_at
           FROM fct_rating f JOIN dim_movie m ON m.movie_id = f.movie_id
           WHERE f.user_id = {user_id} ORDER BY f.rated_at, m.title LIMIT 10""",
    ),
    Question(
        "average_rating_of_movie",
        "What is the average rating of movie {movie_id}?",
        """SELECT m.title, ROUND(AVG(f.rating), 3) AS average_rating, COUNT(*) AS ratings
           FROM fct_rating f JOIN dim_movie m ON m.movie_id = f.movie_id
           WHERE f.movie_id = {movie_id} GROUP BY m.title""",
    ),
    Question(
        "movies_after_1998",
        "Which movies were published after 1998? (how many, and the years they span)",
        """SELECT COUNT(*) AS movies, MIN(year) AS first_year, MAX(year) AS last_year
           FROM dim_movie WHERE year > 1998""",
    ),
    Question(
        "busiest_hour",
        "At which hour of the day (UTC) are the most ratings submitted?",
        """SELECT hour_of_day, COUNT(*) AS ratings FROM fct_rating
           GROUP BY hour_of_day ORDER BY ratings DESC, hour_of_day LIMIT 1""",
    ),
    Question(
        "top_genres",
        "Top genres by number of ratings",
        """SELECT b.genre, COUNT(*) AS ratings
           FROM fct_rating f JOIN bridge_movie_genre b ON b.movie_id = f.movie_id
           GROUP BY b.genre ORDER BY ratings DESC, b.genre LIMIT 5""",
    ),
)


def render(question: Question, movie_id: int | None, user_id: int | None) -> tuple[str, str]:
    """(question text, SQL) with the example ids filled in (ids are ints, so this is injection-safe);
    an id of None (an empty lake has no example) is SQL's NULL, which matches no row."""

    def sql_value(value):
        return "NULL" if value is None else int(value)

    text = question.text.format(
        movie_id=movie_id if movie_id is not None else "(none)", user_id=user_id if user_id is not None else "(none)"
    )
    return text, question.sql.format(movie_id=sql_value(movie_id), user_id=sql_value(user_id))
