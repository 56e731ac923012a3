# geomap web app: docker build -t geomap . && docker run -p 8501:8501 geomap
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /srv/geomap

# rasterio, pyogrio and numba ship wheels with GDAL/LLVM inside; libgomp1 gives numba its
# OpenMP threading layer (without it numba falls back to one that geomap must serialise).
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md ./
COPY geomap ./geomap
RUN pip install .
COPY app ./app
COPY .streamlit ./.streamlit
COPY data_samples ./data_samples

RUN useradd --create-home geomap
USER geomap
# numba compiles the feature kernels into the user's cache now rather than in the first training
# (from /, so that the installed geomap, which the app imports, is the one compiled)
RUN cd / && python -c "from geomap.kernels import warm_up; warm_up()"
EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import urllib.request as u; u.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4)"
CMD ["streamlit", "run", "app/streamlit_app.py", "--server.port=8501", "--server.address=0.0.0.0"]
