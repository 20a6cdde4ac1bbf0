# The api and the worker share one image; the command picks the role.
FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY core core
COPY models models
COPY persistence persistence
COPY bus bus
COPY llm llm
COPY workflows workflows
COPY activities activities
COPY workers workers
COPY api api
COPY cli cli
RUN pip install --no-cache-dir . && useradd --system agora
USER agora
EXPOSE 8000
ENV AGORA_API_HOST=0.0.0.0
CMD ["python", "-m", "api"]
