using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace SecureMesh.Node.Control;

/// <summary>The blocklist: address ranges and content IDs (blocked peers are listed here too; they are blocked under <c>/peers</c>).</summary>
internal static class BlockEndpoints
{
    public static void Map(IEndpointRouteBuilder v1)
    {
        v1.MapGet("/blocklist", (NodeControlService control, CancellationToken ct) => control.GetBlocklistAsync(ct));
        v1.MapPost("/blocklist/content", (BlockRequest request, NodeControlService control, CancellationToken ct) => control.BlockContentAsync(request.Value ?? string.Empty, request.Reason, ct));
        v1.MapDelete("/blocklist/content", async (string id, NodeControlService control, CancellationToken ct) =>
        {
            await control.UnblockContentAsync(id, ct);
            return Results.NoContent();
        });
        v1.MapPost("/blocklist/addr", (BlockRequest request, NodeControlService control, CancellationToken ct) => control.BlockAddressAsync(request.Value ?? string.Empty, request.Reason, ct));
        v1.MapDelete("/blocklist/addr", async (string cidr, NodeControlService control, CancellationToken ct) =>
        {
            await control.UnblockAddressAsync(cidr, ct);
            return Results.NoContent();
        });
    }
}
