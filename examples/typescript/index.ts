// Qwen 2.5 7B on one L40S, served by vLLM, from TypeScript. The SDK under sdks/pulumi-vllm is generated
// by `pulumi package add https://github.com/<your-org>/pulumi-vllm.git/plugin@v0.1.0` (see docs/multi-language.md).
import * as pulumi from "@pulumi/pulumi";
import * as vllm from "@pulumi/pulumi-vllm";

const config = new pulumi.Config();

const platform = new vllm.GpuPlatform("gpu", {
    gpu: { enablement: "device-plugin" },
    namespaces: [{ name: "llm", gpus: 8 }],
});

const qwen = new vllm.VllmServing("qwen", {
    name: "qwen",
    namespace: "llm",
    model: { id: "Qwen/Qwen2.5-7B-Instruct" },
    engine: { maxModelLen: 16384, gpuMemoryUtilization: 0.9 },
    parallelism: { tensorParallelSize: 1 },
    resources: { gpuType: "L40S", nodeSelector: { "nvidia.com/gpu.present": "true" } },
    cache: { size: "50Gi" },
    apiKey: config.requireSecret("apiKey"),
}, { dependsOn: [platform] });

export const baseUrl = qwen.baseUrl;
export const servedModelName = qwen.servedModelName;
