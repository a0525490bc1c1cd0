"""Bodies the real management API sends (reference/providers.md), shared by the tests' MockTransport handlers."""

from __future__ import annotations

from typing import Any


def endpoint_json(
    name: str = "my-audio-model",
    *,
    state: str = "pending",
    repository: str = "facebook/mms-tts-eng",
    instance_type: str = "nvidia-t4",
    min_replica: int = 0,
    max_replica: int = 1,
    scale_to_zero_timeout: int | None = 15,
    ready: int = 0,
    target: int = 0,
    url: str | None = None,
    updated_at: str = "2026-12-01T10:00:00.000Z",
) -> dict[str, Any]:
    return {
        "accountId": None,
        "compute": {
            "accelerator": "gpu",
            "id": f"aws-us-east-1-{instance_type}-x1",
            "instanceSize": "x1",
            "instanceType": instance_type,
            "scaling": {
                "maxReplica": max_replica,
                "minReplica": min_replica,
                "scaleToZeroTimeout": scale_to_zero_timeout,
            },
        },
        "healthRoute": "/health",
        "model": {
            "env": {},
            "framework": "pytorch",
            "image": {"huggingface": {}},
            "repository": repository,
            "revision": "8a7f1b2",
            "task": "text-to-speech",
        },
        "name": name,
        "provider": {"region": "us-east-1", "vendor": "aws"},
        "status": {
            "createdAt": "2026-12-01T10:00:00.000Z",
            "createdBy": {"id": "6123", "name": "acme"},
            "message": "Endpoint is " + state,
            "private": None,
            "readyReplica": ready,
            "state": state,
            "targetReplica": target,
            "updatedAt": updated_at,
            "updatedBy": {"id": "6123", "name": "acme"},
            "url": url,
        },
        "type": "authenticated",
    }


def provider_json() -> dict[str, Any]:
    def compute(instance_type: str, price: float, gpu_gb: int, status: str = "available") -> dict[str, Any]:
        return {
            "id": f"aws-us-east-1-{instance_type}-x1",
            "accelerator": "gpu",
            "instanceType": instance_type,
            "instanceSize": "x1",
            "numAccelerators": 1,
            "memoryGb": 30,
            "gpuMemoryGb": gpu_gb,
            "pricePerHour": price,
            "status": status,
        }

    return {
        "vendors": [
            {
                "name": "aws",
                "regions": [
                    {
                        "name": "us-east-1",
                        "computes": [
                            compute("nvidia-t4", 0.5, 16),
                            compute("nvidia-l4", 0.8, 24),
                            compute("nvidia-a10g", 1.0, 24, status="unavailable"),
                        ],
                    }
                ],
            },
            {"name": "gcp", "regions": [{"name": "us-east4", "computes": [compute("nvidia-l4", 0.7, 24)]}]},
        ]
    }


def hub_model_json(repo: str = "meta-llama/Llama-3.1-8B-Instruct") -> dict[str, Any]:
    """`GET https://huggingface.co/api/models/{repo}` as the Hub answers it (huggingface_hub's ModelInfo fields)."""
    return {
        "_id": "66969b4e45bb9a4a2eb1c2a1",
        "id": repo,
        "modelId": repo,
        "author": repo.split("/")[0],
        "sha": "0e9e39f249a16976918f6564b8830bc894c89659",
        "lastModified": "2024-09-25T17:00:57.000Z",
        "private": False,
        "disabled": False,
        "gated": "manual",
        "pipeline_tag": "text-generation",
        "library_name": "transformers",
        "tags": ["transformers", "safetensors", "llama", "text-generation", "conversational", "en"],
        "downloads": 5_409_223,
        "likes": 4_312,
        "createdAt": "2024-07-18T08:56:00.000Z",
        "siblings": [{"rfilename": "config.json"}, {"rfilename": "model-00001-of-00004.safetensors"}],
    }
