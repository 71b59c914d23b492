FROM python:3.12-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY membership ./membership
RUN pip install --no-cache-dir . && useradd --create-home membership && mkdir -p /data && chown membership /data
USER membership
ENV MEMBERSHIP_DATA_DIR=/data
EXPOSE 8000
CMD ["membership", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "4"]
