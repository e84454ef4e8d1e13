/* A UCX ifunc host against the installed compat library (ferry::ucp_ifunc):
 * <ucp/api/ucp.h> is the compat header, the ifunc API links and answers. */
#include <stdio.h>
#include <string.h>

#include <ucp/api/ucp.h>

int main(void)
{
    ucp_params_t params;
    ucp_context_h ctx;
    ucp_ifunc_reg_param_t p;
    ucp_ifunc_h h = NULL;
    memset(&params, 0, sizeof(params));
    params.field_mask = UCP_PARAM_FIELD_FEATURES;
    params.features = UCP_FEATURE_RMA;
    if (ucp_init(&params, NULL, &ctx) != UCS_OK) {
        return 1;
    }
    p.name = "no_such_ifunc";
    p.pure = 0;
    p.llvm_bc = 1;
    if (ucp_register_ifunc(ctx, p, &h) != UCS_ERR_NO_ELEM || h != NULL) {
        return 1;
    }
    printf("ifunc consumer: %s\n", ferry_ucp_ifunc_last_error());
    ucp_cleanup(ctx);
    return 0;
}
