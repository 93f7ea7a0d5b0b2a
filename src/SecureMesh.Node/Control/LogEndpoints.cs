using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;

namespace SecureMesh.Node.Control;

/// <summary>The audit log and its hash-chain check.</summary>
internal static class LogEndpoints
{
    public static void Map(IEndpointRouteBuilder v1)
    {
        v1.MapGet("/log", (DateTimeOffset? since, int? limit, NodeControlService control, CancellationToken ct) => control.GetLogAsync(since, limit, ct));
        v1.MapGet("/log/verify", (NodeControlService control, CancellationToken ct) => control.VerifyLogAsync(ct));
    }
}
