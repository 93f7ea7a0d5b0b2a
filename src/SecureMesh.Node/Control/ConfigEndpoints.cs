using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;

namespace SecureMesh.Node.Control;

/// <summary>Settings: list, get, set (applied to the running node where it can be).</summary>
internal static class ConfigEndpoints
{
    public static void Map(IEndpointRouteBuilder v1)
    {
        v1.MapGet("/config", (NodeControlService control, CancellationToken ct) => control.ListConfigAsync(ct));
        v1.MapGet("/config/{key}", (string key, NodeControlService control, CancellationToken ct) => control.GetConfigAsync(key, ct));
        v1.MapPut("/config/{key}", (string key, ConfigSetRequest request, NodeControlService control, CancellationToken ct) => control.SetConfigAsync(key, request.Value, ct));
    }
}
